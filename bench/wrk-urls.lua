-- wrk script for bench/cached-throughput.sh: cycles through every URL of a file (WRK_URLS), one
-- per request, with the headers cache-preload sends (Chrome's User-Agent, Accept and
-- Accept-Encoding), so the baseline asks nginx for the same cached pages the crawler does.
local paths = {}
local n = 0

function init(args)
    local f = assert(io.open(os.getenv("WRK_URLS"), "r"))
    for line in f:lines() do
        local path = line:match("^https?://[^/]+(/.*)$")
        if path then
            n = n + 1
            paths[n] = path
        end
    end
    f:close()
    -- Each thread starts at a different place in the list.
    n_at = (math.random(n) - 1)
end

function request()
    n_at = (n_at % n) + 1
    return wrk.format("GET", paths[n_at], {
        ["User-Agent"] = os.getenv("WRK_UA"),
        ["Accept"] = os.getenv("WRK_ACCEPT"),
        ["Accept-Encoding"] = "gzip, deflate, br, zstd",
    })
end
