module.exports = function UAParser(ua) { return { ua: ua || "" }; };
