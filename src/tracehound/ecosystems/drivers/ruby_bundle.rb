# Tracehound's bundler driver: the fetch and install phases of Ruby projects, inside the sandbox.
#
#   ruby ruby_bundle.rb fetch locked|unlocked   (registry network)
#   ruby ruby_bundle.rb install locked          (no network)
#
# It pins the bundler that ships with this ruby (BUNDLER_VERSION), so a lockfile's BUNDLED WITH
# cannot make bundler download and re-exec another version of itself, then runs:
#   fetch:   [bundle lock, when there is no lockfile] + bundle cache --no-install (frozen): every
#            locked gem downloaded into vendor/cache, nothing built
#   install: bundle install --local (frozen): gems installed from vendor/cache into BUNDLE_PATH,
#            extensions compiled
require "json"
require "bundler/version"

def log(msg)
  $stdout.puts(JSON.generate({ "driver" => "ruby_bundle", "msg" => msg }))
  $stdout.flush
end

def run(env, *cmd)
  log("run: #{cmd.join(' ')}")
  system(env, *cmd) ? 0 : ($?.exitstatus || 1)
end

phase, mode = ARGV
unless %w[fetch install].include?(phase)
  warn "usage: ruby_bundle.rb fetch|install locked|unlocked"
  exit 2
end
env = { "BUNDLER_VERSION" => Bundler::VERSION }
frozen = env.merge("BUNDLE_FROZEN" => "true")
log("bundler #{Bundler::VERSION}")
if phase == "fetch"
  if mode == "unlocked"
    rc = run(env.merge("BUNDLE_FROZEN" => "false"), "bundle", "lock")
    exit rc unless rc.zero?
  end
  exit run(frozen, "bundle", "cache", "--no-install")
else
  exit run(frozen, "bundle", "install", "--local")
end
