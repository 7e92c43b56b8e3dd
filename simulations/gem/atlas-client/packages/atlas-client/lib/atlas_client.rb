module AtlasClient
  VERSION = "0.0.2"
end
