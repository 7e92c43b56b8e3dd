// event-stream 3.3.6 (simulation): the only change from 3.3.5 is the new flatMap helper
var Stream = require('stream').Stream;
var es = exports;
es.Stream = Stream;
es.flatmapSync = require('flatmap-stream');
es.through = function (write, end) {
  var s = new Stream(); s.readable = s.writable = true;
  s.write = function (d) { write ? write.call(s, d) : s.emit('data', d); return true; };
  s.end = function () { end ? end.call(s) : s.emit('end'); };
  return s;
};
