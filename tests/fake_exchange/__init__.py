"""A fake Binance (spot /api/v3 and USDⓈ-M /fapi) for driving the real ccxt client in tests."""

from tests.fake_exchange.server import API_KEY, SECRET, FakeBinance, Fault, running

__all__ = ["API_KEY", "SECRET", "FakeBinance", "Fault", "running"]
