"""Meeting screens rendered from the class's real photos, for the tests and the benchmarks: galleries
(gallery), every app's layouts (layouts), lectures as video (recording) and the benchmark's lecture
(lecture). Not shipped: the wheel holds `bot` only."""
