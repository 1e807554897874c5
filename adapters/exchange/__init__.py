"""Exchange adapters: the ccxt gateway and its resilience parts."""
