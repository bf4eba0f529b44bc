"""adgm_core: the Auxiliary Deep Generative Model (Maaløe et al. 2016) for semi-supervised learning.

No web, queue or database code lives here; see `adgm_core.cli` for the command line.
"""

__version__ = "0.1.0"
