module SimplecovCiReporter; end
