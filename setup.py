"""Package list for setuptools (the rest of the metadata is in pyproject.toml).

The pinned model catalog is edited at the top of the tree (`catalog/`, beside `oxydra/`) and
imported as the package `oxydra.catalog.data`, so `importlib.resources` finds it the same way
in an editable install, a wheel and the `oxydra.pyz` archive (build_pyz.py copies it there).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["oxydra*"]), "oxydra.catalog.data"],
    package_dir={"oxydra.catalog.data": "catalog"},
)
