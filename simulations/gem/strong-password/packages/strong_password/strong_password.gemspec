Gem::Specification.new do |s|
  s.name = "strong_password"
  s.version = "0.0.7"
  s.summary = "simulation from Tracehound's attack suite"
  s.authors = ["simulation"]
  s.license = "MIT"
  s.files = ["lib/strong_password.rb"]
  s.extensions = []
end
