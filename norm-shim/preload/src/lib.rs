//! `libnpp_norm.so`: re-cases `%xx` triplets in HTTP/1.x request lines written by wget and curl,
//! so preloaded cache keys match what visitors send. Work in progress (issue 8).
