<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Live;

use PHPUnit\Framework\TestCase;

/**
 * The live environment, given by the e2e harness: NPP_E2E_SAFEXEC (setuid safexec), NPP_E2E_STATE
 * (a directory the site user owns), NPP_E2E_BASE_URL, NPP_E2E_SITEMAP and NPP_E2E_PAGES (the number
 * of sitemap URLs). A missing variable fails the test; it never skips.
 */
abstract class LiveEnv extends TestCase
{
    protected static function env(string $name): string
    {
        $v = getenv($name);
        if ($v === false || $v === '') {
            self::fail("$name is not set: run the live tests through `cargo test -p e2e --test wordpress`");
        }
        return $v;
    }

    /** A fresh state directory under NPP_E2E_STATE. */
    protected static function stateDir(): string
    {
        $d = self::env('NPP_E2E_STATE') . '/' . bin2hex(random_bytes(6));
        mkdir($d, 0700);
        return $d;
    }

    /** [uid of the process, comm] from /proc, or null when it is gone. */
    protected static function owner(int $pid): ?array
    {
        $status = @file_get_contents("/proc/$pid/status");
        $comm = @file_get_contents("/proc/$pid/comm");
        if ($status === false || $comm === false || preg_match('/^Uid:\s+(\d+)/m', $status, $m) !== 1) {
            return null;
        }
        return [(int) $m[1], trim($comm)];
    }
}
