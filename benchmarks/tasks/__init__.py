"""Each task's part of the benchmarks, found by the task's name (`gandemo.tasks.TASKS`): a module
`benchmarks/tasks/<name>.py`, so that a new task adds its own file here and edits nothing else in
`benchmarks/`. `benchmarks/_server.py` reads these names from it:

    request(root, examples) -> (api_name, inputs)   required: the tab's main endpoint with a small,
                                                    typical request, every input given (a Path is a
                                                    file to upload; pictures written into `examples`;
                                                    `root` is the checkpoint root the app serves)
    SEED_INPUT: int                                 optional: which of those inputs is a seed (the crowd
                                                    of load.py sends a new one with every request)
    stand_in(folder, variant) -> str                optional: write an UNTRAINED checkpoint of the cpu
                                                    preset's size into `folder` (used where no checkpoint
                                                    is shipped); returns what it is, in words
    data(images) -> Path                            optional: what the task's trainer reads as --data,
                                                    made beside the plain image folder `images`

A hook module imports from `gandemo`, `training` and `benchmarks._data` only: never `_server.py` nor
a script, so that `benchmarks/` has no import cycle (tests/benchmarks checks both).
"""
