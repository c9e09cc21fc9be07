"""retain: churn and customer-lifetime-value models for retention teams."""

__version__ = "0.1.0"

__all__ = ["__version__"]
