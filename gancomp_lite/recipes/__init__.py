"""Training recipes: what each stage optimises. The one Trainer (`gancomp_lite.train`) drives them.

Write a new recipe by subclassing `Recipe` (see `recipes/base.py` for the life cycle and
`recipes/pix2pix.py` for a complete example).
"""
from gancomp_lite.recipes.base import OptimConfig, Recipe
from gancomp_lite.recipes.pix2pix import Pix2PixRecipe

__all__ = ["OptimConfig", "Pix2PixRecipe", "Recipe"]
