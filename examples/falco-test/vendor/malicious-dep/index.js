module.exports = 'nothing to see here';
