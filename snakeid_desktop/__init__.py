"""SnakeID Desktop: offline snake identification from photos.

The core modules here (model, bundle, imageload, predictor, batch, cli) never import Qt;
the GUI lives in ``snakeid_desktop.gui`` and training code in ``snakeid_desktop.training``.
"""

__version__ = "0.1.0"
