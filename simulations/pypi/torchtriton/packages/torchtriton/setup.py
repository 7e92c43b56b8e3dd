from setuptools import setup

setup(name="torchtriton", version="2.0.0+f1d5c1a", packages=["triton"])
