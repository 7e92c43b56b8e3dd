from setuptools import setup

setup(name="ctx", version="0.2.6", py_modules=["ctx"],
      description="A minimal Python dictionary with dot notation access")
