<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

/**
 * A started preload: its PID and start time (which together survive a PHP-FPM worker restart in the
 * client's state file) and the files its output goes to.
 */
final class PreloadJob
{
    /** @var int */
    public $pid;
    /** @var int|null start time in clock ticks since boot, from /proc/<pid>/stat */
    public $startTicks;
    /** @var float unix time the job was started */
    public $startedAt;
    /** @var string the crawler's --json events */
    public $eventsFile;
    /** @var string the crawler's and safexec's stderr */
    public $errorsFile;
    /** @var int|null pages expected, for the ETA */
    public $expectedTotal;
    /** @var string[] what was preloaded (start URLs and sitemaps) */
    public $targets;

    /**
     * @param string[] $targets
     */
    public function __construct(int $pid, ?int $startTicks, float $startedAt, string $eventsFile, string $errorsFile, ?int $expectedTotal, array $targets)
    {
        $this->pid = $pid;
        $this->startTicks = $startTicks;
        $this->startedAt = $startedAt;
        $this->eventsFile = $eventsFile;
        $this->errorsFile = $errorsFile;
        $this->expectedTotal = $expectedTotal;
        $this->targets = $targets;
    }

    /** @return array<string,mixed> */
    public function toArray(): array
    {
        return [
            'pid' => $this->pid,
            'start_ticks' => $this->startTicks,
            'started_at' => $this->startedAt,
            'events_file' => $this->eventsFile,
            'errors_file' => $this->errorsFile,
            'expected_total' => $this->expectedTotal,
            'targets' => $this->targets,
        ];
    }

    /**
     * @param array<string,mixed> $a
     */
    public static function fromArray(array $a): ?self
    {
        if (!isset($a['pid'], $a['started_at'], $a['events_file'], $a['errors_file']) || !is_int($a['pid'])) {
            return null;
        }
        return new self(
            $a['pid'],
            isset($a['start_ticks']) && is_int($a['start_ticks']) ? $a['start_ticks'] : null,
            (float) $a['started_at'],
            (string) $a['events_file'],
            (string) $a['errors_file'],
            isset($a['expected_total']) && is_int($a['expected_total']) ? $a['expected_total'] : null,
            isset($a['targets']) && is_array($a['targets']) ? array_values(array_filter($a['targets'], 'is_string')) : []
        );
    }
}
