"""One module per tab; `gandemo.ui.app.build_app` puts them together."""
