require "restclient"
