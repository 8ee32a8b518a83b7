<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

/**
 * The outcome of one purge call: a result per target and the path it took.
 */
final class PurgeReport
{
    /** @var string "service" (the purge service's socket) or "safexec" (`safexec cache-purge`) */
    public $via;
    /** @var PurgeResult[] */
    public $results;
    /** @var string why the service was not used, when $via is "safexec" */
    public $fallbackReason;
    /** @var array<string,mixed>|null the tool's or service's summary object, if it printed one */
    public $summary;

    /**
     * @param PurgeResult[] $results
     * @param array<string,mixed>|null $summary
     */
    public function __construct(string $via, array $results, string $fallbackReason = '', ?array $summary = null)
    {
        $this->via = $via;
        $this->results = $results;
        $this->fallbackReason = $fallbackReason;
        $this->summary = $summary;
    }

    /** Cache files removed in total. */
    public function removed(): int
    {
        $n = 0;
        foreach ($this->results as $r) {
            $n += $r->removed;
        }
        if ($n === 0 && is_array($this->summary)) {
            foreach (['removed', 'files', 'deleted'] as $k) {
                if (isset($this->summary[$k]) && is_int($this->summary[$k])) {
                    return $this->summary[$k];
                }
            }
        }
        return $n;
    }
}
