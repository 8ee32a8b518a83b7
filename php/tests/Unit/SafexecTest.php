<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Tests\Unit;

use NppSecure\CacheClient\Exception\SafexecUnavailableException;
use NppSecure\CacheClient\Safexec;
use PHPUnit\Framework\TestCase;

final class SafexecTest extends TestCase
{
    public function testMissingSafexecIsRefusedBeforeAnythingRuns(): void
    {
        $this->expectException(SafexecUnavailableException::class);
        $this->expectExceptionMessage('safexec not found at /nonexistent/safexec');
        new Safexec('/nonexistent/safexec');
    }

    public function testRelativePathIsRefused(): void
    {
        $this->expectException(SafexecUnavailableException::class);
        $this->expectExceptionMessage('not absolute');
        new Safexec('safexec');
    }

    public function testAFileThatIsNotSetuidRootIsRefused(): void
    {
        $f = tempnam(sys_get_temp_dir(), 'sx');
        chmod($f, 0755);
        try {
            new Safexec($f);
            self::fail('accepted a plain file');
        } catch (SafexecUnavailableException $e) {
            self::assertStringContainsString('is not setuid root', $e->getMessage());
        } finally {
            unlink($f);
        }
    }

    public function testADirectoryIsRefused(): void
    {
        $this->expectException(SafexecUnavailableException::class);
        $this->expectExceptionMessage('not a regular file');
        new Safexec(sys_get_temp_dir());
    }
}
