__version__ = "0.1.0"

# Kept by nbdev_export, which rewrites only the version line above: the one-call forecast at the package top,
# imported on first use so that `import lstm_forecast.<module>` (and `lstm-forecast --help`) stays light.
__all__ = ["forecast_ticker", "ForecastResult"]

def __getattr__(name):
    if name in __all__:
        from . import service
        return getattr(service, name)
    raise AttributeError(f"module 'lstm_forecast' has no attribute {name!r}")
