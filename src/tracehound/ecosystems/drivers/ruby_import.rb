# Tracehound's import driver for Ruby projects (inside the sandbox, after `bundle install`).
#
#   ruby ruby_import.rb SPEC.json
#
# For each direct gem it starts one child ruby whose environment carries the package tag, sets up
# the bundle and requires the gem as Bundler.require would: the Gemfile's `require:` names, else
# the gem name, else the name with dashes turned into slashes, else the gem's top-level lib files.
# Prints one JSON line per gem; a gem that does not load is reported, not fatal. Requires of other
# gems' files are bracketed by attribution markers (docs/attribution.md).
require "json"
require "open3"
require "timeout"

CHILD = <<~'RUBY'
  require "json"
  require "bundler/setup"
  name = ARGV[0]

  # Every require that loads a file of an activated gem runs bracketed by marker syscalls naming
  # that gem (tracehound/markers.py), with its tag in the environment, and so do threads started
  # inside: what a gem's dependency does while it loads is attributed to that dependency.
  module TracehoundBrackets
    GEMS = Gem.loaded_specs.values.map { |s| [File.join(s.full_gem_path, ""), "gem:#{s.name}@#{s.version}"] }
                                  .sort_by { |path, _| -path.length }

    def self.open_tags  # per thread: the tags whose code is running
      Thread.current[:tracehound_open] ||= []
    end

    def self.mark(kind, tag)
      File.open("/dev/null/.tracehound/#{kind}/#{tag}").close
    rescue SystemCallError
      nil
    end

    def self.tag_of(feature)
      found = $LOAD_PATH.resolve_feature_path(feature.to_s) rescue nil
      file = found && found[1]
      return nil unless file.is_a?(String)
      GEMS.each { |path, tag| return tag if file.start_with?(path) }
      nil
    end

    def self.bracket(tag, env_key)
      old = env_key && ENV[env_key]
      ENV[env_key] = tag if env_key
      open_tags.push(tag)
      mark("b", tag)
      begin
        yield
      ensure
        mark("e", tag)
        open_tags.pop
        env_key && (old.nil? ? ENV.delete(env_key) : ENV[env_key] = old)
      end
    end

    private def require(feature)
      tag = TracehoundBrackets.tag_of(feature)
      return super if tag.nil?
      TracehoundBrackets.bracket(tag, TracehoundBrackets::ENV_KEY) { super }
    end
  end

  module TracehoundThreads
    def new(*args, **kw, &blk)
      tag = TracehoundBrackets.open_tags.last
      return super if tag.nil? || blk.nil?
      super(*args, **kw) { |*a| TracehoundBrackets.bracket(tag, nil) { blk.call(*a) } }
    end
  end

  TracehoundBrackets.const_set(:ENV_KEY, TRACEHOUND_ENV_KEY)
  Kernel.prepend(TracehoundBrackets)
  Thread.singleton_class.prepend(TracehoundThreads)
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
    # the hook's setting goes into the code, not ARGV: loaded gems read ARGV
    code = "TRACEHOUND_ENV_KEY = #{spec["env_key"].to_s.dump}\n" + CHILD
    Open3.popen2e(env, RbConfig.ruby, "-e", code, pkg["name"]) do |_stdin, io, wait|
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
