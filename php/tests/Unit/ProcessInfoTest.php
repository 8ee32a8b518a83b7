<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Unit;

use NppSecure\CacheClient\ProcessInfo;
use PHPUnit\Framework\TestCase;

final class ProcessInfoTest extends TestCase
{
    /** @var string */
    private $root;

    protected function setUp(): void
    {
        $this->root = sys_get_temp_dir() . '/npp-proc-' . bin2hex(random_bytes(4));
        mkdir($this->root);
    }

    protected function tearDown(): void
    {
        foreach (glob($this->root . '/*/stat') ?: [] as $f) {
            unlink($f);
            rmdir(dirname($f));
        }
        rmdir($this->root);
    }

    private function fake(int $pid, string $comm, string $state, int $start): void
    {
        mkdir("{$this->root}/$pid");
        $fields = array_fill(0, 40, '0');
        $fields[0] = $state;
        $fields[19] = (string) $start;
        file_put_contents("{$this->root}/$pid/stat", "$pid ($comm) " . implode(' ', $fields) . "\n");
    }

    public function testReadsStateStartTimeAndACommWithParenthesesAndSpaces(): void
    {
        $this->fake(42, 'cache-preload) S (x', 'S', 123456);
        $p = new ProcessInfo($this->root);
        self::assertSame(['S', 123456, 'cache-preload) S (x'], $p->stat(42));
        self::assertTrue($p->running(42));
        self::assertTrue($p->running(42, 123456));
        self::assertFalse($p->running(42, 123457), 'same PID, another process');
    }

    public function testZombiesAndMissingProcessesAreNotRunning(): void
    {
        $this->fake(7, 'cache-preload', 'Z', 5);
        $p = new ProcessInfo($this->root);
        self::assertFalse($p->running(7));
        self::assertNull($p->stat(8));
        self::assertFalse($p->running(0));
        self::assertFalse($p->running(-1));
    }

    public function testTheRealProcOfThisProcess(): void
    {
        $s = (new ProcessInfo())->stat(getmypid());
        self::assertNotNull($s);
        self::assertTrue((new ProcessInfo())->running(getmypid(), $s[1]));
    }
}
