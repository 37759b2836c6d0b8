"""sat2scape: from a satellite tile to the view of a person standing there.

Pipeline stages, one module each (see README, "Project layout"):
world / sources -> filters -> sources.satellite -> train_gan -> train_encoder -> evaluate / predict / figures
"""

__version__ = "0.1.0"
