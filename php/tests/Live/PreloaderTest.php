<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Live;

use NppSecure\CacheClient\Exception\JobException;
use NppSecure\CacheClient\Exception\ToolFailedException;
use NppSecure\CacheClient\PreloadJob;
use NppSecure\CacheClient\PreloadOptions;
use NppSecure\CacheClient\Preloader;
use NppSecure\CacheClient\ProcessInfo;
use NppSecure\CacheClient\Safexec;

/**
 * The real setuid safexec and cache-preload against the real site, run as the site user.
 */
final class PreloaderTest extends LiveEnv
{
    private function preloader(?string $dir = null): Preloader
    {
        return new Preloader(new Safexec(self::env('NPP_E2E_SAFEXEC')), $dir ?? self::stateDir());
    }

    private static function waitUntilDone(Preloader $p, float $limit): void
    {
        $t0 = microtime(true);
        while ($p->isRunning()) {
            if (microtime(true) - $t0 > $limit) {
                self::fail("the preload still runs after $limit s");
            }
            usleep(100000);
        }
    }

    public function testSitemapPreloadRunsAsNobodyReportsProgressAndFinishes(): void
    {
        $p = $this->preloader();
        $pages = (int) self::env('NPP_E2E_PAGES');
        // A short pause between requests keeps the run long enough to watch, even on a warm cache.
        $job = $p->start(PreloadOptions::sitemap(self::env('NPP_E2E_SITEMAP'))->expecting($pages)->option('--wait', '0.01'));
        self::assertGreaterThan(1, $job->pid);
        self::assertTrue($p->isRunning());
        // Progress while it runs: pages grow, an ETA is given.
        $seen = null;
        $t0 = microtime(true);
        while ($p->isRunning() && microtime(true) - $t0 < 60) {
            $now = $p->progress();
            if ($now->running && $now->pages > 0) {
                $seen = $now;
                break;
            }
            usleep(50000);
        }
        self::assertNotNull($seen, 'no progress while the job ran');
        self::assertNotNull($seen->eta);
        self::assertLessThan(100.0, $seen->percent());
        self::waitUntilDone($p, 120);
        $done = $p->progress();
        self::assertFalse($done->running);
        self::assertTrue($done->finished, 'no summary: ' . $done->message);
        self::assertSame($pages, $done->pages);
        self::assertSame($pages, $done->ok);
        self::assertSame($pages, $done->hits() + $done->misses());
        self::assertSame(100.0, $done->percent());
        self::assertSame($pages, $done->summary['pages']);
        self::assertSame([], $done->errors);
        // The next run's ETA uses this run's page count.
        $again = $p->start(PreloadOptions::sitemap(self::env('NPP_E2E_SITEMAP')));
        self::assertSame($pages, $again->expectedTotal);
        self::waitUntilDone($p, 120);
        self::assertSame($pages, $p->progress()->hits(), 'the second run finds every page cached');
    }

    public function testAJobOutlivesTheProcessThatStartedItAndIsStoppedByANewOne(): void
    {
        $dir = self::stateDir();
        // Another PHP process starts the job and exits, as a PHP-FPM worker that is recycled.
        $code = sprintf(
            'require %s; $p = new NppSecure\CacheClient\Preloader(new NppSecure\CacheClient\Safexec(%s), %s);'
            . ' $j = $p->start(NppSecure\CacheClient\PreloadOptions::crawl([%s])->option("--wait", "0.2")); echo $j->pid;',
            var_export(dirname(__DIR__, 2) . '/autoload.php', true),
            var_export(self::env('NPP_E2E_SAFEXEC'), true),
            var_export($dir, true),
            var_export(self::env('NPP_E2E_BASE_URL'), true)
        );
        $out = [];
        exec(escapeshellarg(PHP_BINARY) . ' -r ' . escapeshellarg($code), $out, $rc);
        self::assertSame(0, $rc, implode("\n", $out));
        $pid = (int) end($out);
        self::assertGreaterThan(1, $pid);

        $p = $this->preloader($dir);
        $job = $p->current();
        self::assertNotNull($job);
        self::assertSame($pid, $job->pid);
        $nobody = posix_getpwnam('nobody');
        self::assertIsArray($nobody);
        // The PID is the crawler's own (safexec and nohup exec in place), running as nobody.
        $t0 = microtime(true);
        $who = null;
        while (microtime(true) - $t0 < 5) {
            $who = self::owner($pid);
            if ($who === null || $who[1] === 'cache-preload') {
                break;
            }
            usleep(10000);
        }
        self::assertSame([$nobody['uid'], 'cache-preload'], $who);

        self::assertNotNull($job->startTicks);
        self::assertTrue($p->isRunning(), 'the job died with the process that started it');
        // A second start while it runs is refused.
        try {
            $p->start(PreloadOptions::crawl([self::env('NPP_E2E_BASE_URL')]));
            self::fail('a second job started');
        } catch (JobException $e) {
            self::assertStringContainsString("already running (PID $pid)", $e->getMessage());
        }
        usleep(600000);
        $mid = $p->progress();
        self::assertTrue($mid->running);
        self::assertGreaterThan(0, $mid->pages);
        self::assertTrue($p->stop());
        self::assertFalse($p->isRunning());
        self::assertFalse((new ProcessInfo())->running($pid));
        $after = $p->progress();
        self::assertFalse($after->running);
        self::assertFalse($after->finished, 'a stopped crawl prints no summary');
        self::assertFalse($p->stop(), 'nothing left to stop');
    }

    public function testRunWarmsExactlyTheGivenPagesBeforeReturning(): void
    {
        $base = self::env('NPP_E2E_BASE_URL');
        $p = $this->preloader();
        $first = $p->run(PreloadOptions::pages([$base, $base . '?p=1']));
        self::assertTrue($first->finished);
        self::assertSame(2, $first->pages);
        self::assertFalse($p->isRunning());
        $second = $p->run(PreloadOptions::pages([$base]));
        self::assertSame(['HIT' => 1], $second->cache);
    }

    public function testTheCrawlersRefusalIsAnExceptionWithItsMessage(): void
    {
        $p = $this->preloader();
        try {
            $p->start(PreloadOptions::crawl([self::env('NPP_E2E_BASE_URL')])->rejecting('(unclosed'));
            self::fail('an invalid regex was accepted');
        } catch (ToolFailedException $e) {
            self::assertSame('cache-preload', $e->getTool());
            self::assertSame(2, $e->getExitCode());
            self::assertMatchesRegularExpression('/regex/i', $e->getToolMessage());
        }
        self::assertFalse($p->isRunning());
    }

    public function testSafexecRefusesToKillAProcessThatIsNotThisUsersJob(): void
    {
        $dir = self::stateDir();
        $stat = (new ProcessInfo())->stat(1);
        self::assertNotNull($stat);
        // A forged state file naming PID 1 (init): safexec --kill must refuse it.
        $job = new PreloadJob(1, $stat[1], microtime(true), "$dir/x.jsonl", "$dir/x.err", null, []);
        file_put_contents("$dir/preload.json", json_encode($job->toArray()));
        $p = $this->preloader($dir);
        self::assertTrue($p->isRunning());
        try {
            $p->stop();
            self::fail('safexec killed PID 1');
        } catch (ToolFailedException $e) {
            self::assertSame('safexec', $e->getTool());
            self::assertNotSame(0, $e->getExitCode());
            self::assertNotSame('', $e->getToolMessage());
        }
        self::assertTrue((new ProcessInfo())->running(1));
    }
}
