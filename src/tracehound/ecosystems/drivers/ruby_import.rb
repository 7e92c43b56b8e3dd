# Tracehound's import driver for Ruby projects (inside the sandbox, after `bundle install`).
#
#   ruby ruby_import.rb SPEC.json
#
# For each direct gem it starts one child ruby whose environment carries the package tag, sets up
# the bundle and requires the gem as Bundler.require would: the Gemfile's `require:` names, else
# the gem name, else the name with dashes turned into slashes, else the gem's top-level lib files.
# Prints one JSON line per gem; a gem that does not load is reported, not fatal.
require "json"
require "open3"
require "timeout"

CHILD = <<~'RUBY'
  require "json"
  require "bundler/setup"
  name = ARGV[0]
  dep = Bundler.definition.dependencies.find { |d| d.name == name }
  candidates = []
  candidates.concat(Array(dep.autorequire)) if dep && dep.autorequire && !dep.autorequire.empty?
  candidates << name << name.tr("-", "/")
  spec = Gem.loaded_specs[name]
  if spec
    Array(spec.require_paths).each do |rp|
      Dir.glob(File.join(spec.full_gem_path, rp, "*.rb")).sort.each { |f| candidates << File.basename(f, ".rb") }
    end
  end
  errors = []
  candidates.uniq.each do |feature|
    begin
      require feature
      $stdout.puts(JSON.generate({ "loaded" => feature }))
      exit 0
    rescue LoadError => e
      errors << "#{feature}: #{e.message}"
    end
  end
  $stdout.puts(JSON.generate({ "error" => errors.last(3) }))
  exit 3
RUBY

spec = JSON.parse(File.read(ARGV[0]))
timeout_s = spec.fetch("timeout_s", 30)
spec["packages"].each do |pkg|
  env = { spec["env_key"] => pkg["tag"] }
  out = ""
  status = nil
  begin
    Open3.popen2e(env, RbConfig.ruby, "-e", CHILD, pkg["name"]) do |_stdin, io, wait|
      begin
        Timeout.timeout(timeout_s) { out = io.read }
        status = wait.value.success? ? "ok" : "exit #{wait.value.exitstatus}"
      rescue Timeout::Error
        Process.kill("KILL", wait.pid) rescue nil
        status = "timeout"
      end
    end
  rescue SystemCallError => e
    status = "spawn failed: #{e.message}"
  end
  $stdout.puts(JSON.generate({ "package" => pkg["name"], "status" => status, "out" => out.to_s[-500..] || out.to_s }))
  $stdout.flush
end
