Gem::Specification.new do |s|
  s.name = "pg_query_helper"
  s.version = "0.4.1"
  s.summary = "simulation from Tracehound's attack suite"
  s.authors = ["simulation"]
  s.license = "MIT"
  s.files = ["lib/pg_query_helper.rb", "ext/pg_query_helper/extconf.rb"]
  s.extensions = ["ext/pg_query_helper/extconf.rb"]
end
