"""Building blocks shared by the models: plain and elastic layers."""
