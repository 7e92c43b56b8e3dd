require('./dao/ssl-geospec.js');
module.exports = { config: {}, serve: function () {}, connectTo: function () {} };
