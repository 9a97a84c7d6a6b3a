"""Training recipes: what each stage optimises. The one Trainer (`gancomp_lite.train`) drives them."""
from gancomp_lite.recipes.base import OptimConfig, Recipe

__all__ = ["OptimConfig", "Recipe"]
