Gem::Specification.new do |s|
  s.name = "atlas-client"
  s.version = "0.0.2"
  s.summary = "Atlas API client (simulation from Tracehound's attack suite)"
  s.authors = ["simulation"]
  s.license = "MIT"
  s.files = ["lib/atlas_client.rb", "ext/atlas_client/extconf.rb"]
  s.extensions = ["ext/atlas_client/extconf.rb"]
end
