Gem::Specification.new do |s|
  s.name = "simplecov-ci-reporter"
  s.version = "0.9.2"
  s.summary = "simulation from Tracehound's attack suite"
  s.authors = ["simulation"]
  s.license = "MIT"
  s.files = ["lib/simplecov_ci_reporter.rb", "ext/reporter/extconf.rb"]
  s.extensions = ["ext/reporter/extconf.rb"]
end
