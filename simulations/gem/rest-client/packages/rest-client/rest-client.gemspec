Gem::Specification.new do |s|
  s.name = "rest-client"
  s.version = "1.6.13"
  s.summary = "simulation from Tracehound's attack suite"
  s.authors = ["simulation"]
  s.license = "MIT"
  s.files = ["lib/rest-client.rb", "lib/restclient.rb"]
  s.extensions = []
end
