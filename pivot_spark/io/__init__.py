"""Input side of the pipeline: filesystems behind URIs (:mod:`.fs`) and the record readers of each format
(:mod:`.readers`). Neither imports pyspark."""
