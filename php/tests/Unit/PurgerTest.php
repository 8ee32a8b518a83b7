<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Unit;

use NppSecure\CacheClient\Exception\InvalidInputException;
use NppSecure\CacheClient\Exception\ServiceUnavailableException;
use NppSecure\CacheClient\Purger;
use NppSecure\CacheClient\PurgeResult;
use NppSecure\CacheClient\PurgeServiceClient;
use PHPUnit\Framework\TestCase;

final class PurgerTest extends TestCase
{
    private function purger(): Purger
    {
        // A service that does not exist: anything reaching it would throw ServiceUnavailable.
        return new Purger(null, new PurgeServiceClient('/nonexistent/purged.sock'));
    }

    public function testBadInputIsRefusedBeforeAnythingRuns(): void
    {
        foreach ([
            static function (Purger $p): void { $p->purgeUrls(['/relative/']); },
            static function (Purger $p): void { $p->purgeUrls([]); },
            static function (Purger $p): void { $p->purgeUrls(['https://example.com/'], 'later'); },
            static function (Purger $p): void { $p->purgePrefix('example.com/blog/'); },
            static function (Purger $p): void { $p->purgeAll('https://example.com/', 'relative/dir'); },
            static function (Purger $p): void { $p->purgeAll('https://example.com/', '/var/cache/../../etc'); },
            static function (Purger $p): void { $p->refreshUrls(["https://example.com/\n"]); },
        ] as $i => $call) {
            try {
                $call($this->purger());
                self::fail("call $i was accepted");
            } catch (InvalidInputException $e) {
                self::assertStringNotContainsString("\n", $e->getMessage());
            }
        }
    }

    public function testAPurgerNeedsAPath(): void
    {
        $this->expectException(InvalidInputException::class);
        new Purger(null, null);
    }

    public function testAMissingServiceIsReportedWhenThereIsNoFallback(): void
    {
        $this->expectException(ServiceUnavailableException::class);
        $this->expectExceptionMessage('no purge service socket at /nonexistent/purged.sock');
        $this->purger()->purgeUrls(['https://example.com/']);
    }

    public function testResultsReadTheToolsAndTheServicesShapes(): void
    {
        $cli = PurgeResult::fromJson(['request' => 'https://e.com/a', 'kind' => 'url', 'status' => 'purged', 'files' => 2, 'skipped' => [], 'new' => 1], 'x');
        self::assertSame(['https://e.com/a', 'purged', 2], [$cli->target, $cli->status, $cli->removed]);
        $none = PurgeResult::fromJson(['request' => 'https://e.com/c', 'kind' => 'url', 'status' => 'not-cached', 'files' => 0], 'x');
        self::assertSame('not_cached', $none->status);
        $svc = PurgeResult::fromJson(['url' => 'https://e.com/b', 'status' => 'not_cached', 'files' => 0, 'skipped' => 0, 'rewarm' => 'queued'], 'x');
        self::assertSame(['https://e.com/b', 'not_cached', 0], [$svc->target, $svc->status, $svc->removed]);
        $prefix = PurgeResult::fromJson(['ok' => true, 'files' => 3, 'skipped' => 0], 'https://e.com/p');
        self::assertSame(['https://e.com/p', 'purged', 3], [$prefix->target, $prefix->status, $prefix->removed]);
    }
}
