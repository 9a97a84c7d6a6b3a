"""Building blocks: elastic (width-sliceable) layers and the blocks made of them."""
