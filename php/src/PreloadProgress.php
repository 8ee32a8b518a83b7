<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

/**
 * A snapshot of a preload's progress, read from cache-preload's `--json` events.
 */
final class PreloadProgress
{
    /** @var bool the job still runs */
    public $running = false;
    /** @var bool the crawler printed its summary (a run that was stopped or crashed has none) */
    public $finished = false;
    /** @var int pages that got a final HTTP response */
    public $pages = 0;
    /** @var int of those, 2xx */
    public $ok = 0;
    /** @var int of those, not 2xx (404, 500, ...) */
    public $httpErrors = 0;
    /** @var int fetches that got no response (timeouts, refused connections) */
    public $failed = 0;
    /** @var array<string,int> nginx cache status of the crawler's requests: HIT, MISS, BYPASS, ... */
    public $cache = [];
    /** @var string|null the last page fetched */
    public $lastUrl = null;
    /** @var array<int,array{url:string,status:int|null,message:string}> the last 20 failures and HTTP errors */
    public $errors = [];
    /** @var float seconds since the job started (the crawler's own figure once finished) */
    public $elapsed = 0.0;
    /** @var int|null pages the run is expected to fetch */
    public $expectedTotal = null;
    /** @var float|null estimated seconds left, while running and a total is known */
    public $eta = null;
    /** @var array<string,mixed>|null the crawler's summary object, as printed */
    public $summary = null;
    /** @var string the tool's message when it ended without a summary (its stderr) */
    public $message = '';

    /** Crawler requests that nginx answered from the cache. */
    public function hits(): int
    {
        return $this->cache['HIT'] ?? 0;
    }

    /** Crawler requests that nginx had to render (and stored). */
    public function misses(): int
    {
        return $this->cache['MISS'] ?? 0;
    }

    /** Done in percent of the expected total (capped at 99 while running), or null if unknown. */
    public function percent(): ?float
    {
        if ($this->finished) {
            return 100.0;
        }
        if ($this->expectedTotal === null || $this->expectedTotal === 0) {
            return null;
        }
        $p = 100.0 * $this->pages / $this->expectedTotal;
        return $this->running ? min(99.0, $p) : min(100.0, $p);
    }

    /** @return array<string,mixed> for json_encode (a progress endpoint) */
    public function toArray(): array
    {
        return [
            'running' => $this->running,
            'finished' => $this->finished,
            'pages' => $this->pages,
            'ok' => $this->ok,
            'http_errors' => $this->httpErrors,
            'failed' => $this->failed,
            'cache' => $this->cache,
            'hits' => $this->hits(),
            'misses' => $this->misses(),
            'last_url' => $this->lastUrl,
            'errors' => $this->errors,
            'elapsed' => round($this->elapsed, 3),
            'expected_total' => $this->expectedTotal,
            'percent' => $this->percent(),
            'eta' => $this->eta === null ? null : round($this->eta, 1),
            'message' => $this->message,
        ];
    }
}
