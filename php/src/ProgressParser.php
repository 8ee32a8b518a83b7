<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

/**
 * Parses cache-preload's `--json` output: one JSON object per line. Tolerant on purpose: unknown
 * events and fields are ignored, a line that does not decode (the half-written last line of a running
 * job) is skipped, and the event name may be in `event` or `type`, so added fields and a re-layered
 * event schema keep working.
 */
final class ProgressParser
{
    private const KEEP_ERRORS = 20;

    /** Folds every complete line of $jsonLines into $p. */
    public static function apply(PreloadProgress $p, string $jsonLines): void
    {
        foreach (explode("\n", $jsonLines) as $line) {
            $line = trim($line);
            if ($line === '' || $line[0] !== '{') {
                continue;
            }
            $e = json_decode($line, true);
            if (!is_array($e)) {
                continue;
            }
            self::event($p, $e);
        }
    }

    /** A fresh progress value from $jsonLines. */
    public static function parse(string $jsonLines): PreloadProgress
    {
        $p = new PreloadProgress();
        self::apply($p, $jsonLines);
        return $p;
    }

    /** @param array<string,mixed> $e */
    private static function event(PreloadProgress $p, array $e): void
    {
        $kind = $e['event'] ?? $e['type'] ?? $e['kind'] ?? null;
        if (!is_string($kind)) {
            return;
        }
        switch (strtolower($kind)) {
            case 'page':
                $p->pages++;
                $status = isset($e['status']) && is_int($e['status']) ? $e['status'] : null;
                $ok = isset($e['ok']) && is_bool($e['ok']) ? $e['ok'] : ($status !== null && $status >= 200 && $status < 300);
                $url = self::str($e['url'] ?? null);
                if ($ok) {
                    $p->ok++;
                } else {
                    $p->httpErrors++;
                    self::error($p, $url, $status, 'HTTP ' . ($status ?? '?'));
                }
                $p->lastUrl = $url !== '' ? $url : $p->lastUrl;
                $cache = $e['cache'] ?? null;
                if (is_array($cache)) {
                    $cache = $cache['status'] ?? null;
                }
                if (is_string($cache) && $cache !== '') {
                    $k = strtoupper($cache);
                    $p->cache[$k] = ($p->cache[$k] ?? 0) + 1;
                }
                break;
            case 'error':
            case 'failure':
                $p->failed++;
                self::error($p, self::str($e['url'] ?? null), null, self::str($e['message'] ?? ($e['kind'] ?? 'failed')));
                break;
            case 'summary':
            case 'finished':
            case 'done':
                $p->finished = true;
                $p->summary = $e;
                if (isset($e['elapsed_ms']) && is_numeric($e['elapsed_ms'])) {
                    $p->elapsed = ((float) $e['elapsed_ms']) / 1000.0;
                }
                break;
            default:
                break; // notices and events added later
        }
    }

    private static function error(PreloadProgress $p, string $url, ?int $status, string $message): void
    {
        $p->errors[] = ['url' => $url, 'status' => $status, 'message' => $message];
        if (count($p->errors) > self::KEEP_ERRORS) {
            array_shift($p->errors);
        }
    }

    /** @param mixed $v */
    private static function str($v): string
    {
        return is_string($v) ? $v : '';
    }
}
