from setuptools import setup

setup(name="secrevthree", version="0.0.1", packages=["secrevthree"])
