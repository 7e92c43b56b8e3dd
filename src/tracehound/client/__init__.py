"""The client of a Tracehound server: pack a project, upload it, wait, fetch the report."""

from tracehound.client.api import Client, ClientError, ServerError, credentials_from_env, server_from_env
from tracehound.client.pack import pack_directory

__all__ = ["Client", "ClientError", "ServerError", "credentials_from_env", "pack_directory", "server_from_env"]
