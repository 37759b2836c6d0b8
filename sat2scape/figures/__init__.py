"""Every README figure and the demo GIF, one module per family:

    figures/world.py     the built-in world's contact sheet
    figures/diagrams.py  pipeline and layer diagrams drawn from the model definitions
    figures/gan.py       sample grid, latent traversal, loss curves
    figures/encoder.py   loss tables, prediction grids, the demo GIF
    figures/funnel.py    the filter funnel's report
"""
