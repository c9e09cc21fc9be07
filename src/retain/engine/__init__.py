"""Where the scoring steps run: on customer partitions of one machine, or on Spark.

The steps are the pure functions of :mod:`retain.scoring` (per part of the population) and the
global values between them (value counts, the purchase-model fit on counted triples, the
budget stream). :mod:`retain.engine.local` runs them partition after partition, so memory is
bounded by a partition, not by the data; :mod:`retain.engine.spark` runs them on Spark.
"""
