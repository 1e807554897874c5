"""One router per resource; `interfaces.http.app.create_app` includes them all."""
