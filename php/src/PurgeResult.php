<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

/**
 * The outcome for one purge target (a URL, a prefix, or the whole cache), as the tool reported it.
 */
final class PurgeResult
{
    /** @var string the URL or prefix, or "*" for the whole cache */
    public $target;
    /** @var string the tool's status word: "purged", "not_cached", "refreshed", "purged_all", ... */
    public $status;
    /** @var int cache files removed (every Vary variant counts) */
    public $removed;
    /** @var array<string,mixed> the tool's object as printed (fields added later stay available) */
    public $raw;

    /** @param array<string,mixed> $raw */
    public function __construct(string $target, string $status, int $removed, array $raw)
    {
        $this->target = $target;
        $this->status = $status;
        $this->removed = $removed;
        $this->raw = $raw;
    }

    /**
     * Builds a result from one JSON object of `cache-purge --json` or of the purge service, reading
     * the usual field names and ignoring the rest.
     *
     * @param array<string,mixed> $o
     */
    public static function fromJson(array $o, string $fallbackTarget): self
    {
        $target = $fallbackTarget;
        foreach (['url', 'request', 'target', 'prefix'] as $k) {
            if (isset($o[$k]) && is_string($o[$k]) && $o[$k] !== '') {
                $target = $o[$k];
                break;
            }
        }
        $status = '';
        foreach (['status', 'result', 'outcome'] as $k) {
            if (isset($o[$k]) && is_string($o[$k])) {
                $status = $o[$k];
                break;
            }
        }
        $removed = 0;
        foreach (['files', 'removed', 'deleted'] as $k) {
            if (!isset($o[$k])) {
                continue;
            }
            if (is_int($o[$k])) {
                $removed = $o[$k];
                break;
            }
            if (is_array($o[$k])) {
                $removed = count($o[$k]);
                break;
            }
        }
        if ($status === '') {
            $status = $removed > 0 ? 'purged' : 'not_cached';
        }
        // One vocabulary for callers: cache-purge prints "not-cached", the service "not_cached".
        $status = str_replace('-', '_', strtolower($status));
        if ($status === 'not_cached' && $removed > 0) {
            $status = 'purged'; // prefix and all answers of the service carry counts only
        }
        return new self($target, $status, $removed, $o);
    }

    /** Whether something was removed for this target. */
    public function purged(): bool
    {
        return $this->removed > 0;
    }
}
